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

# A grant lets a role use some methods ("*": any) on the paths its pattern matches: a path
# itself, "/prefix/**" (everything below the prefix), or "/prefix/*" (one segment below it).
granted(grant) if {
	some m in grant.methods
	m in {"*", method}
	path_matches(grant.path)
}

# Plain string functions, not glob.match: OPA's WebAssembly compiles a glob on every call
# (about 10 µs each here), which would dominate the decision.
path_matches(pattern) if pattern == path

path_matches(pattern) if {
	endswith(pattern, "/**")
	startswith(path, trim_suffix(pattern, "**"))
}

path_matches(pattern) if {
	endswith(pattern, "/*")
	not endswith(pattern, "/**")
	prefix := trim_suffix(pattern, "*")
	startswith(path, prefix)
	rest := substring(path, count(prefix), -1)
	rest != ""
	not contains(rest, "/")
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
