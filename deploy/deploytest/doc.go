// Package deploytest holds the deployment tests: the images that
// deploy/images/build.sh builds, run on the machine's Docker engine — the
// workspace image with courier-agent as PID 1 against a control plane on
// the host, the same hardened, and the compose stack of deploy/compose.yaml
// (PostgreSQL, two control-plane replicas, haproxy, a workspace). Nothing
// is pulled. Without a Docker engine or the images the tests skip, saying
// so; under CI=true they fail instead.
package deploytest
