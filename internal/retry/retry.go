// Package retry holds what every retry loop of the binary shares: jittered
// waits, so that clients started together do not retry in step.
package retry

import (
	"math/rand/v2"
	"time"
)

// Jitter returns d spread uniformly over [d/2, 3d/2): on average the wait
// asked for, never two clients in step. A non-positive d is returned as is.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d/2 + rand.N(d)
}
