package retry

import (
	"testing"
	"time"
)

func TestJitterSpreadsAroundTheWait(t *testing.T) {
	const d = 100 * time.Millisecond
	lo, hi := d, time.Duration(0)
	for range 2000 {
		j := Jitter(d)
		if j < d/2 || j >= 3*d/2 {
			t.Fatalf("Jitter(%v) = %v, outside [%v, %v)", d, j, d/2, 3*d/2)
		}
		lo, hi = min(lo, j), max(hi, j)
	}
	if lo > 60*time.Millisecond || hi < 140*time.Millisecond {
		t.Errorf("2000 draws span only [%v, %v]", lo, hi)
	}
	if Jitter(0) != 0 || Jitter(-time.Second) != -time.Second {
		t.Error("a non-positive wait changed")
	}
}
