// Package controlplane is Courier's control plane server: it serves the
// Secrets REST API (users, sessions, workspaces, secrets, bulk import), the
// SSH proxy into workspaces, health and Prometheus metrics, and mounts the
// agents' websocket endpoint (controlplane/agentapi), all on one HTTP
// listener backed by the SQLite store, with secret values sealed at rest
// when an encryption key is configured.
//
// # Decisions the reference leaves open
//
//   - POST /api/v2/users/first works only on a server without users and
//     makes an admin; afterwards it answers 409 Conflict.
//   - Session tokens are 32 random bytes, base64url; only their SHA-256 is
//     stored. They are accepted in Coder-Session-Token (the reference's),
//     Courier-Session-Token and "Authorization: Bearer". A session lasts
//     Config.SessionLifetime (7 days); logout revokes the presented token.
//   - {user} is a user ID, a username or "me". A member naming another
//     user gets 404, exactly as for a user that does not exist, so
//     usernames cannot be probed.
//   - Admins and auditors may list and read the metadata of other users'
//     secrets (never a value: no route returns one), but may not create,
//     change or delete them: 403. Only the owner writes their secrets.
//     Roles, suspension, deletion and passwords: userlifecycle.go.
//   - Only a workspace's owner may open SSH into it; an admin gets 403 on
//     someone else's workspace, because a shell can read the owner's
//     secrets. An unconnected agent is 503.
//   - POST and PATCH bodies must be application/json (parameters such as
//     charset allowed); a missing Content-Type is read as JSON; any other
//     type is 415 (curl -d without -H sends a form type). Bodies over
//     Config.MaxBodyBytes (1 MiB) are 413; unknown fields are 400. A body
//     encoding/json would read differently from what was sent is 400 before
//     it is decoded: bytes that are not valid UTF-8 or a \u escape of a lone
//     surrogate (decoded as U+FFFD), and an object repeating a key at any
//     depth, or two keys naming one field in different case (the last
//     would win). The message names the key (package strictjson).
//   - A value is bytes. "value" carries UTF-8 text; "value_base64" (standard
//     base64 with padding) carries anything, in create, PATCH and json/yaml
//     batch entries; sending both is 400. Caps count the raw bytes, not the
//     base64. A secret with an env target must hold UTF-8 text without NUL:
//     a create, a PATCH of the value, or a PATCH adding an env target to a
//     secret whose stored value is binary (the server opens it to check,
//     inside the write transaction) is 400 otherwise.
//   - Errors are {"message": "...", "validations": [{"field","detail"}]};
//     "validations" is left out when there are none.
//   - Caps (R9) are checked inside the store's write transaction on the
//     stored (sealed) bytes of the user's whole set, so parallel writers
//     cannot together pass them. Values are sealed with additional data
//     "<user ID>\x00<secret name>".
//   - Batch import formats are described on BatchFormatEnv.
//   - A secret has an additive "enabled" field (default true; absent on
//     create means true, absent on PATCH leaves it; a PATCH with only
//     enabled is an update). A disabled secret stays listed and editable,
//     keeps its env name and file path reserved and counts toward the caps,
//     but agents get it without its value and apply nothing for it
//     (outcome "disabled"); a file written before stays (R7).
//   - GET /api/v2/workspaces/{workspace}/agent returns the workspace's
//     agent status (AgentStatusResponse): lifecycle state and since when,
//     connected and since when, the agent's version and address, when a
//     newer connection with the same token last replaced another, and the
//     last apply report (per-secret outcomes, warnings, files left behind
//     under R7). It is kept in the store, so it survives a restart. Access
//     is the workspace's: its owner and admins; anyone else gets 404, as
//     for a workspace that does not exist.
//   - GET /api/v2/workspaces/{workspace}/logs returns the workspace's
//     startup logs (issue 21; package startlogs, workspacelogs.go): its
//     scripts' and apps' output, masked by the agent, with cursors, a long
//     poll (wait) or server-sent events (follow), and each one's last run.
//     Access is the workspace's, as for the agent status.
//   - Agents: newest wins. A connection with a workspace's agent token
//     replaces the one already open for that workspace, which is closed
//     with websocket code 4001 (proto.CloseReplaced); the replacement is
//     logged as a warning naming both peers and shown in the agent status.
//   - Secret changes: every committed secret write (REST create, PATCH,
//     DELETE, batch; the dashboard's forms) publishes the owner's ID on a
//     notify.Notifier (publishingStore wraps the store, so no write path can
//     forget it); the agent endpoint tells each connected agent of that
//     owner the owner's secrets revision. The agent status adds
//     changes_pending (the owner's revision is newer than the one the last
//     apply used) and secrets_revision; a template may set live_files.
//   - Revocation (R13): deleting a workspace, rotating its agent token and
//     suspending or deleting a user publish the owner's ID the same way; the
//     agent endpoint of every replica re-checks that owner's connected
//     agents and closes those whose token is no longer valid with code 4003
//     (proto.CloseRevoked), and the SSH proxies of a suspended or deleted
//     user or a deleted workspace end (workspacelifecycle.go,
//     sshrevoke.go, agentapi/revoke.go).
package controlplane
