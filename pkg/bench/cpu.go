package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ), 100 on
// every Linux architecture Go supports.
const userHZ = 100

// The processes whose CPU time is measured.
var processes = []string{"kube-apiserver", "etcd", "signal-apiserver", "bench"}

// CPUSeconds is CPU time (user + system) by process.
type CPUSeconds map[string]float64

// Sub returns c - before, process by process.
func (c CPUSeconds) Sub(before CPUSeconds) CPUSeconds {
	out := CPUSeconds{}
	for p, s := range c {
		out[p] = s - before[p]
	}
	return out
}

// Total is the CPU time of all processes.
func (c CPUSeconds) Total() float64 {
	var total float64
	for _, s := range c {
		total += s
	}
	return total
}

// cpuMeter reads the CPU time of the control plane's processes, which are
// this process's children (so that another control plane on the machine is
// never measured), and of this process.
type cpuMeter struct {
	// pids are the processes of each role: one, but a replica per
	// signal-apiserver process.
	pids map[string][]int
}

// newCPUMeter finds the children of this process whose executables are
// named kube-apiserver, etcd and signal-apiserver (the base name of
// serverBinary).
func newCPUMeter(serverBinary string) (*cpuMeter, error) {
	names := map[string]string{
		"kube-apiserver":            "kube-apiserver",
		"etcd":                      "etcd",
		filepath.Base(serverBinary): "signal-apiserver",
	}
	m := &cpuMeter{pids: map[string][]int{"bench": {os.Getpid()}}}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil || len(fields) < 2 {
			continue // gone, or not ours to read
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != os.Getpid() {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		if role, ok := names[filepath.Base(exe)]; ok {
			m.pids[role] = append(m.pids[role], pid)
		}
	}
	for _, p := range processes {
		if _, ok := m.pids[p]; !ok {
			return nil, fmt.Errorf("no %s process among this process's children", p)
		}
	}
	return m, nil
}

// add measures one more process in role, such as a second replica.
func (m *cpuMeter) add(role string, pid int) {
	m.pids[role] = append(m.pids[role], pid)
}

// read returns the CPU time the processes of each role used so far.
func (m *cpuMeter) read() (CPUSeconds, error) {
	out := CPUSeconds{}
	for role, pids := range m.pids {
		for _, pid := range pids {
			fields, err := statFields(pid)
			if err != nil {
				return nil, err
			}
			s, err := cpuFromStat(fields)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			out[role] += s
		}
	}
	return out, nil
}

// statFields returns the fields of /proc/<pid>/stat after the command name,
// starting with the state (field 3 of proc(5)).
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return parseStat(string(data))
}

// parseStat splits a /proc/<pid>/stat line after the command name, which is
// in parentheses and may itself hold spaces and parentheses.
func parseStat(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("no command name in %q", stat)
	}
	return strings.Fields(stat[i+1:]), nil
}

// cpuFromStat returns utime + stime (fields 14 and 15 of proc(5)) in
// seconds, from the fields parseStat returns.
func cpuFromStat(fields []string) (float64, error) {
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields, want at least 13", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return float64(ticks) / userHZ, nil
}

// machineCPU is the CPU time of the whole machine, from the cpu line of
// /proc/stat.
type machineCPU struct {
	// Busy is user, nice, system, irq and softirq time of every process.
	Busy float64
	// Steal is time the hypervisor gave to other machines.
	Steal float64
}

func readMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseMachineCPU(line)
}

// parseMachineCPU parses the "cpu user nice system idle iowait irq
// softirq steal ..." line of /proc/stat.
func parseMachineCPU(line string) (machineCPU, error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("not the cpu line of /proc/stat: %q", line)
	}
	ticks := make([]int64, 8)
	for i := range ticks {
		n, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks[i] = n
	}
	busy := ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
	return machineCPU{Busy: float64(busy) / userHZ, Steal: float64(ticks[7]) / userHZ}, nil
}
