package loadtest

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// minStaticPort is the lowest port freeLoopbackAddr hands out.
const minStaticPort = 10000

// errNoFreePort is freeLoopbackAddr's error when every try was taken.
var errNoFreePort = errors.New("loadtest: no free loopback port below the ephemeral range")

// freeLoopbackAddr returns a 127.0.0.1 address with a free port below the
// kernel's ephemeral range. The tool restarts servers on the address they
// had (a killed replica behind haproxy, the control plane of the restart
// scenario), and while one is down its port must stay free: a port in the
// ephemeral range can be given to any of the tens of thousands of
// connections a run opens as their local port, and then the restart fails
// with "address already in use" (seen once in a 30,000-agent run).
func freeLoopbackAddr() (string, error) {
	hi := ephemeralStart()
	if hi-minStaticPort < 1000 {
		// A range that starts this low leaves nothing safe: take any.
		return listenFree("127.0.0.1:0")
	}
	for range 200 {
		port := minStaticPort + rand.IntN(hi-minStaticPort)
		if addr, err := listenFree(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return addr, nil
		}
	}
	return "", errNoFreePort
}

// listenFree listens on addr and closes at once, returning the address.
func listenFree(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range (Linux's
// default, 32768, where it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
