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
