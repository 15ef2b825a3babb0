# Role-based access control for the `authorization` template: which caller may use which
# method on which path. Roles, and who holds them, are data (data.json beside this file),
# so granting a role is a data-only change: the policy is not recompiled.
package rbac

import rego.v1

# The caller's roles: bound to the user, or to the group Mixer's template passes as a list.
caller_roles contains role if {
	some role in data.bindings.users[input.subject.user]
}

caller_roles contains role if {
	some group in object.get(input.subject, "groups", [])
	some role in data.bindings.groups[group]
}

method := object.get(input.action, "method", "")

path := object.get(input.action, "path", "")

# A grant lets a role use some methods ("*": any) on the paths its glob matches; "*" stays
# within one path segment, "**" crosses them.
granted(grant) if {
	some m in grant.methods
	m in {"*", method}
	glob.match(grant.path, ["/"], path)
}

default allow := false

allow if {
	some role in caller_roles
	some grant in data.roles[role]
	granted(grant)
}

caller := object.get(input.subject, "user", "anonymous")

# What the adapter asks for (checkMethod: data.rbac.decision): a denial names who was
# refused what; a grant tells the service which roles let the call through.
decision := {
	"allow": true,
	"headers": {"request": {"x-rbac-roles": concat(",", sort(caller_roles))}},
} if allow

decision := {
	"allow": false,
	"reason": sprintf("%s may not %s %s", [caller, method, path]),
} if not allow
