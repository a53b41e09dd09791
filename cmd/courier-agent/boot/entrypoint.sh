#!/bin/sh
# Container entrypoint for a workspace image: courier-agent is the
# container's main process. It applies secrets, runs the template's startup
# scripts and apps, and serves SSH; SIGTERM from `docker stop` reaches it
# directly (exec), so it reports shutting_down/off and exits 0. As PID 1
# the agent is also the container's init: it reaps orphans and forwards
# signals to a child that runs the agent (agent/initproc).
#
# Needs COURIER_AGENT_URL and either COURIER_AGENT_TOKEN_FILE (a mounted
# secret readable by the workspace user, preferred) or COURIER_AGENT_TOKEN.
#
# Run it as the workspace user (the image's USER), not root: the agent needs
# write access to its file secrets' directories and its data dir
# (~/.local/state/courier-agent by default), never escalates, and runs every
# script, app and session as that same user.
set -eu
: "${COURIER_AGENT_URL:?set COURIER_AGENT_URL to the control plane URL}"
if [ -z "${COURIER_AGENT_TOKEN:-}" ] && [ -z "${COURIER_AGENT_TOKEN_FILE:-}" ]; then
	echo "entrypoint: set COURIER_AGENT_TOKEN_FILE (or COURIER_AGENT_TOKEN)" >&2
	exit 64
fi
if [ -z "${COURIER_AGENT_TOKEN_FILE:-}" ]; then
	echo "entrypoint: COURIER_AGENT_TOKEN stays in the container's configuration (docker inspect); prefer a mounted COURIER_AGENT_TOKEN_FILE" >&2
fi
exec courier-agent "$@"
