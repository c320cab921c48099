package reliability

import (
	"strings"
	"testing"
	"time"
)

// at returns a time ms milliseconds after a fixed origin.
func at(ms int) time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(ms) * time.Millisecond)
}

func ack(call, ret int, rr string, count int64) Request {
	return Request{Fingerprint: "fp", Call: at(call), Return: at(ret), Code: 201, RR: rr, Count: count}
}

func alreadyCounted(call, ret int, rr string, count int64) Request {
	r := ack(call, ret, rr, count)
	r.Outcome = "AlreadyCounted"
	return r
}

func failed(call, ret int) Request {
	return Request{Fingerprint: "fp", Call: at(call), Return: at(ret), Code: 503, RetryAfter: "1"}
}

func TestCheckHistory(t *testing.T) {
	tests := []struct {
		name     string
		requests []Request
		reads    []Read
		// wantErr is a part of the error; empty means the history is valid.
		wantErr string
	}{{
		name:     "sequential counts",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 2), ack(4, 5, "rr-1", 3)},
		reads:    []Read{{RR: "rr-1", Count: 3, Call: at(6), Return: at(7)}},
	}, {
		name: "a group commit of three and one concurrent write, answered out of order",
		requests: []Request{
			ack(0, 1, "rr-1", 1),
			ack(2, 10, "rr-1", 4), ack(3, 9, "rr-1", 4), ack(4, 8, "rr-1", 4),
			ack(2, 5, "rr-1", 5),
		},
	}, {
		name:     "an unacknowledged signal that was counted",
		requests: []Request{ack(0, 1, "rr-1", 1), failed(2, 3), ack(4, 5, "rr-1", 3)},
		reads:    []Read{{RR: "rr-1", Count: 3, Call: at(6), Return: at(7)}},
	}, {
		name: "redeliveries answered AlreadyCounted count nothing",
		requests: []Request{
			ack(0, 1, "rr-1", 1), alreadyCounted(2, 3, "rr-1", 1),
			ack(4, 8, "rr-1", 2), alreadyCounted(5, 9, "rr-1", 2), alreadyCounted(10, 11, "rr-1", 2),
		},
		reads: []Read{{RR: "rr-1", Count: 2, Call: at(12), Return: at(13)}},
	}, {
		name:     "an AlreadyCounted answer with a count that went backwards",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 2), alreadyCounted(4, 5, "rr-1", 1)},
		wantErr:  "no order",
	}, {
		name:     "lost increment: the final count misses an acknowledged signal",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 2), ack(4, 5, "rr-1", 3)},
		reads:    []Read{{RR: "rr-1", Count: 2, Call: at(6), Return: at(7)}},
		wantErr:  "no order",
	}, {
		name: "lost update: two writes from the same base",
		requests: []Request{
			ack(0, 1, "rr-1", 1),
			ack(2, 5, "rr-1", 3), ack(2, 5, "rr-1", 3),
			ack(2, 5, "rr-1", 2),
		},
		wantErr: "no order",
	}, {
		name:     "doubled increment: one signal counted twice",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 3)},
		reads:    []Read{{RR: "rr-1", Count: 3, Call: at(6), Return: at(7)}},
		wantErr:  "no order",
	}, {
		name:     "doubled increment beyond what unacknowledged signals explain",
		requests: []Request{ack(0, 1, "rr-1", 1), failed(2, 3), ack(4, 5, "rr-1", 4)},
		wantErr:  "no order",
	}, {
		name:     "count going backwards in time",
		requests: []Request{ack(0, 1, "rr-1", 2), ack(0, 1, "rr-1", 2), ack(5, 6, "rr-1", 1)},
		wantErr:  "no order",
	}, {
		name:     "one write cannot count a signal sent after another of its signals was answered",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 1)},
		wantErr:  "cannot have been counted by one write",
	}, {
		name:     "stale read after a write was acknowledged",
		requests: []Request{ack(0, 1, "rr-1", 1), ack(2, 3, "rr-1", 2)},
		reads:    []Read{{RR: "rr-1", Count: 1, Call: at(4), Return: at(5)}},
		wantErr:  "no order",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHistory(tt.requests, tt.reads)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("valid history rejected: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("invalid history accepted")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
