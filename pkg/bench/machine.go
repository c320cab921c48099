package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
)

// Machine describes where the benchmark ran. Everything (etcd,
// kube-apiserver, signal-apiserver and the clients) shares it.
type Machine struct {
	NumCPU               int    `json:"nproc"`
	GOMAXPROCS           int    `json:"gomaxprocs"`
	MemTotal             string `json:"memTotal"`
	CPUModel             string `json:"cpuModel"`
	KubeAPIServerVersion string `json:"kubeAPIServerVersion"`
	GoVersion            string `json:"goVersion"`
	Timestamp            string `json:"timestamp"`
	// EtcdArgs is etcd's command line: envtest runs it with
	// --unsafe-no-fsync, so writes cost no disk flush.
	EtcdArgs []string `json:"etcdArgs"`
	// LoadAverage is /proc/loadavg before the control plane started and
	// after the last row: other work on the machine skews every number.
	LoadAverageBefore string `json:"loadAverageBefore"`
	LoadAverageAfter  string `json:"loadAverageAfter"`
	// AggregatorRouting says kube-apiserver's aggregator reached
	// signal-apiserver through the endpoints of its Service, chosen per
	// request; else through an ExternalName Service for localhost.
	AggregatorRouting bool `json:"aggregatorRouting"`
	// Network says where the run's servers listened and its clients sent:
	// in a network namespace of its own, or on the machine's loopback.
	Network string `json:"network"`
}

func machineInfo(disco discovery.ServerVersionInterface) Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		MemTotal:   procField("/proc/meminfo", "MemTotal"),
		CPUModel:   procField("/proc/cpuinfo", "model name"),
		GoVersion:  runtime.Version(),
		Timestamp:  time.Now().UTC().Format(time.RFC3339),
	}
	if v, err := disco.ServerVersion(); err == nil {
		m.KubeAPIServerVersion = v.GitVersion
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// cmdline returns the command line of process pid.
func cmdline(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "" if there is none.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
