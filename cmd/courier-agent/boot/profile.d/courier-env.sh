# /etc/profile.d/courier-env.sh: login shells that courier-agent did not
# start (docker exec … bash -l) source the env the agent gives its own
# processes, from the file it rewrites at every apply (--env-file,
# COURIER_AGENT_ENV_FILE; mode 0600, so only the workspace user reads it).
if [ -r "$HOME/.config/courier/env" ]; then
	. "$HOME/.config/courier/env"
fi
