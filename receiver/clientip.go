package receiver

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// parseNets reads CIDRs, or single addresses taken as /32 or /128.
func parseNets(what string, list []string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("receiver: %s %q is neither a CIDR nor an IP address", what, s)
			}
			bits := 128
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("receiver: %s %q is not a CIDR: %w", what, s, err)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// ipExtractor finds the client IP the allow-list and the rate limit use.
// Echo's defaults would believe X-Forwarded-For from any private address;
// here only the configured proxies are trusted, and without any the
// connection's address is the client's.
func ipExtractor(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range proxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// allowAddresses refuses webhook callbacks from clients outside allowed.
func allowAddresses(allowed []*net.IPNet) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ip := net.ParseIP(c.RealIP())
			for _, n := range allowed {
				if ip != nil && n.Contains(ip) {
					return next(c)
				}
			}
			return problem(http.StatusForbidden, outcomeForbiddenAddress, "this address may not deliver webhooks")
		}
	}
}
