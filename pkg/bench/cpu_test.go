package bench

import "testing"

func TestCPUFromStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want float64
	}{
		{
			name: "plain command name",
			stat: "4242 (etcd) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 566 0 0 20 0 12 0 100 0 0\n",
			want: 18.00,
		},
		{
			name: "command name with spaces and parentheses",
			stat: "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 2 0 0 20 0 1 0 100 0 0\n",
			want: 0.05,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, err := parseStat(tt.stat)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cpuFromStat(fields)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("cpuFromStat = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := cpuFromStat([]string{"S", "1"}); err == nil {
		t.Error("cpuFromStat accepted a short line")
	}
}

func TestParseMachineCPU(t *testing.T) {
	got, err := parseMachineCPU("cpu  515295 7 121750 273580 4001 3 1940 3139 0 0")
	if err != nil {
		t.Fatal(err)
	}
	want := machineCPU{Busy: 6389.95, Steal: 31.39}
	if got != want {
		t.Errorf("parseMachineCPU = %+v, want %+v", got, want)
	}
	if _, err := parseMachineCPU("cpu0 1 2 3"); err == nil {
		t.Error("parseMachineCPU accepted a line that is not the cpu line")
	}
}
