package receiver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// certReloader serves the certificate of a cert and key file pair, and
// rereads them when either file changes, so that a renewed certificate
// (cert-manager, certbot) is used without a restart. A pair that fails to
// load keeps the certificate in force.
type certReloader struct {
	cert *reloadable[tls.Certificate]
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	lastErr string // reported once, not at every check
}

// certCheckEvery bounds how often a handshake stats the files.
const certCheckEvery = time.Second

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	cert, err := newReloadable(func() (tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cert, fmt.Errorf("receiver: TLS certificate: %w", err)
		}
		return cert, nil
	}, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &certReloader{cert: cert, log: log}, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= certCheckEvery {
		r.checked = time.Now()
		// A renewal may write the two files one after the other: a
		// mismatched pair fails to load and is retried next time.
		switch reloaded, err := r.cert.reloadIfChanged(); {
		case err != nil:
			if err.Error() != r.lastErr {
				r.log.Error("keeping the TLS certificate in force", "error", err)
				r.lastErr = err.Error()
			}
		case reloaded:
			r.lastErr = ""
			r.log.Info("TLS certificate reloaded")
		}
	}
	return r.cert.get(), nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least, HTTP/2
// and HTTP/1.1 offered.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
