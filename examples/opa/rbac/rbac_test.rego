# Rego unit tests: `switchboard policy test examples/opa/rbac` (or `opa test` on this folder).
package rbac_test

import rego.v1

import data.rbac

test_admin_may_do_anything if {
	rbac.allow with input as {"subject": {"user": "alice"}, "action": {"method": "DELETE", "path": "/admin/users/7"}}
}

test_reader_may_read if {
	rbac.allow with input as {"subject": {"user": "carol"}, "action": {"method": "GET", "path": "/api/reviews/1"}}
}

test_reader_may_not_write if {
	not rbac.allow with input as {"subject": {"user": "carol"}, "action": {"method": "POST", "path": "/api/reviews/1"}}
}

test_group_grants_reading if {
	rbac.allow with input as {"subject": {"groups": ["staff"]}, "action": {"method": "GET", "path": "/api/ratings"}}
}

test_reviewer_paths_are_one_segment if {
	not rbac.allow with input as {"subject": {"user": "bob"}, "action": {"method": "PUT", "path": "/api/reviews/1/votes"}}
}

test_denial_names_caller_and_request if {
	d := rbac.decision with input as {"subject": {"user": "carol"}, "action": {"method": "DELETE", "path": "/api/reviews/1"}}
	d == {"allow": false, "reason": "carol may not DELETE /api/reviews/1"}
}

test_grant_passes_roles_on if {
	d := rbac.decision with input as {"subject": {"user": "bob"}, "action": {"method": "GET", "path": "/api/reviews/1"}}
	d.headers.request["x-rbac-roles"] == "reader,reviewer"
}

test_data_is_a_document if {
	# Roles come from data: replacing them changes decisions without touching the policy.
	not rbac.allow with input as {"subject": {"user": "alice"}, "action": {"method": "GET", "path": "/"}}
		with data.bindings.users as {}
}
