package netns

import (
	"encoding/json"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

// hostIPv4 returns the IPv4 addresses of this process's interfaces.
func hostIPv4(t *testing.T) []net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if ipNet, ok := a.(*net.IPNet); ok && ipNet.IP.To4() != nil {
			ips = append(ips, ipNet.IP.To4())
		}
	}
	return ips
}

func TestAddressIsNoneOfTheMachines(t *testing.T) {
	if Address.IsLoopback() || Address.To4() == nil {
		t.Fatalf("Address %v must be IPv4 outside the loopback range (EndpointSlices)", Address)
	}
	if _, benchmarks, _ := net.ParseCIDR("198.18.0.0/15"); !benchmarks.Contains(Address) {
		t.Fatalf("Address %v is outside 198.18.0.0/15", Address)
	}
	for _, ip := range hostIPv4(t) {
		if ip.Equal(Address) {
			t.Fatalf("Address %v is an address of this machine", Address)
		}
	}
}

// TestCheckOutsideTheNamespace: in the machine's own network namespace no
// address passes, Address included, so the bench registers none there.
func TestCheckOutsideTheNamespace(t *testing.T) {
	for _, ip := range []net.IP{Address, net.IPv4(127, 0, 0, 1), net.IPv4(192, 0, 2, 1)} {
		if err := Check(ip); err == nil {
			t.Errorf("Check(%v) in the machine's network namespace = nil, want an error", ip)
		}
	}
}

// inside is what TestNamespace's re-executed test binary reports.
type inside struct {
	SetupError string              `json:"setupError"`
	Addresses  map[string][]string `json:"addresses"`
	CheckOther string              `json:"checkOther"`
	// CheckOwn is Check(Address) there; CheckShared is the same as if
	// Reexec had run in this very namespace.
	CheckOwn    string `json:"checkOwn"`
	CheckShared string `json:"checkShared"`
}

// TestNamespace re-executes this test binary in a namespace of its own
// (TestMain answers there) and checks that its interfaces are lo and
// Interface with Address, and that Check refuses any other address there.
func TestNamespace(t *testing.T) {
	if err := Usable(); err != nil {
		t.Skipf("cannot make a network namespace here (%v); make bench runs on loopback then", err)
	}
	cmd, err := command([]string{"-test.run=^$"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("re-executed test binary: %v: %s", err, out)
	}
	var got inside
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if got.SetupError != "" {
		t.Fatalf("Setup: %s", got.SetupError)
	}
	want := map[string][]string{"lo": {"127.0.0.1"}, Interface: {Address.String()}}
	if len(got.Addresses) != len(want) || !slices.Equal(got.Addresses["lo"], want["lo"]) || !slices.Equal(got.Addresses[Interface], want[Interface]) {
		t.Fatalf("IPv4 addresses in the namespace = %v, want %v", got.Addresses, want)
	}
	if !strings.Contains(got.CheckOther, "is not the namespace's address") {
		t.Fatalf("Check(127.0.0.1) in the namespace = %q, want a refusal", got.CheckOther)
	}
	if got.CheckOwn != "" {
		t.Fatalf("Check(%v) in the namespace = %q, want nil", Address, got.CheckOwn)
	}
	if !strings.Contains(got.CheckShared, "as where Reexec ran") {
		t.Fatalf("Check(%v) in the namespace Reexec ran in = %q, want a refusal", Address, got.CheckShared)
	}
}

// TestMain, in the namespace TestNamespace makes, sets it up and prints
// what it sees as JSON instead of running the tests.
func TestMain(m *testing.M) {
	if !Inside() {
		os.Exit(m.Run())
	}
	got := inside{Addresses: map[string][]string{}}
	if err := Setup(); err != nil {
		got.SetupError = err.Error()
	}
	interfaces, err := net.Interfaces()
	if err != nil {
		got.SetupError = err.Error()
	}
	for _, iface := range interfaces {
		addrs, _ := iface.Addrs()
		got.Addresses[iface.Name] = []string{}
		for _, a := range addrs {
			if ipNet, ok := a.(*net.IPNet); ok && ipNet.IP.To4() != nil {
				got.Addresses[iface.Name] = append(got.Addresses[iface.Name], ipNet.IP.String())
			}
		}
	}
	if err := Check(net.IPv4(127, 0, 0, 1)); err != nil {
		got.CheckOther = err.Error()
	}
	if err := Check(Address); err != nil {
		got.CheckOwn = err.Error()
	}
	if own, err := os.Readlink(nsPath); err == nil {
		_ = os.Setenv(envParent, own)
	}
	if err := Check(Address); err != nil {
		got.CheckShared = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(got)
	os.Exit(0)
}
