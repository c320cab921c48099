// Package netns gives the benchmark and the soak (cmd/signal-bench) a
// network namespace of their own, as test/cluster does for make cluster:
// the program re-executes itself under `unshare --net`, brings up that
// namespace's loopback and makes one interface, Interface, carrying
// Address. Every server, contender and client of the run lives there, so
// the load goes to loopback or to Address and never to an address of the
// machine's own interfaces. Address exists for EndpointSlices, which refuse
// loopback addresses.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// Interface is the name of the namespace's own interface: a bridge without
// ports, as test/cluster's node0 (a dummy needs a kernel module that
// machines may lack).
const Interface = "bench0"

// Address is the address of Interface: in 198.18.0.0/15, which RFC 2544
// reserves for benchmarks, so no network of the machine uses it.
var Address = net.IPv4(198, 18, 0, 1).To4()

// envInside marks the re-executed process; envParent tells it the network
// namespace Reexec ran in (nsPath's link there), which its own must not be.
const (
	envInside = "SIGNAL_BENCH_NETNS"
	envParent = "SIGNAL_BENCH_PARENT_NETNS"
)

// nsPath names this process's network namespace.
const nsPath = "/proc/self/ns/net"

// Inside reports whether this process is the one Reexec started.
func Inside() bool { return os.Getenv(envInside) == Interface }

// Usable returns nil if this process can make a network namespace: it is
// root, unshare and ip are installed, and `unshare --net` works.
func Usable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing", tool)
		}
	}
	if out, err := exec.Command("unshare", "--net", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("unshare --net: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Reexec runs this program again with args (without the program name) in
// a new network namespace, with stdin, stdout and stderr shared, and
// returns its exit code. SIGINT and SIGTERM are passed on, so the program
// stops what it started; if this process dies the other gets SIGTERM.
func Reexec(args []string) (int, error) {
	cmd, err := command(args)
	if err != nil {
		return 0, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting unshare --net: %w", err)
	}
	go func() {
		for s := range signals {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

// command returns `unshare --net -- <this program> args...` marked with
// envInside. No --fork: unshare execs the program, which then is the child
// of this process.
func command(args []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	parent, err := os.Readlink(nsPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--", self}, args...)...)
	cmd.Env = append(os.Environ(), envInside+"="+Interface, envParent+"="+parent)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd, nil
}

// Setup brings up the loopback of the namespace Reexec made and adds
// Interface with Address, then checks the namespace with Check. It runs in
// the re-executed process only: in the machine's own namespace it would
// change the machine's network.
func Setup() error {
	if !Inside() {
		return errors.New("netns: Setup outside the namespace Reexec made")
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", Interface, "type", "bridge"},
		{"addr", "add", Address.String() + "/32", "dev", Interface},
		{"link", "set", Interface, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return Check(Address)
}

// Check returns nil if ip is Address and this process is in the network
// namespace Reexec made for it: marked by Reexec, in another namespace
// than the one Reexec ran in, and with Address on Interface. A namespace
// made by `unshare --net` starts with nothing but its own loopback, so
// nothing there reaches the machine's interfaces. Anything else means the
// process shares a network with more than the benchmark, where ip must not
// be served or sent to. It reads no interface but Interface.
func Check(ip net.IP) error {
	if !ip.Equal(Address) {
		return fmt.Errorf("netns: %v is not the namespace's address %v", ip, Address)
	}
	if !Inside() {
		return errors.New("netns: not in the benchmark's own network namespace: not started by Reexec")
	}
	own, err := os.Readlink(nsPath)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if parent := os.Getenv(envParent); parent == "" || parent == own {
		return fmt.Errorf("netns: not in the benchmark's own network namespace: %s is %s, as where Reexec ran (%q)", nsPath, own, parent)
	}
	iface, err := net.InterfaceByName(Interface)
	if err != nil {
		return fmt.Errorf("netns: %s: %w", Interface, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return fmt.Errorf("netns: %s: %w", Interface, err)
	}
	for _, a := range addrs {
		if ipNet, ok := a.(*net.IPNet); ok && ipNet.IP.Equal(Address) {
			return nil
		}
	}
	return fmt.Errorf("netns: %s has %v, not %v", Interface, addrs, Address)
}
