package receiver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate of a cert and key file pair, and
// rereads them when either file's modification time changes, so that a
// renewed certificate (cert-manager, certbot) is used without a restart. A
// pair that fails to load keeps the certificate in force.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
	checked time.Time
	log     *slog.Logger
}

// certCheckEvery bounds how often a handshake stats the files.
const certCheckEvery = time.Second

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the pair; r.mu is held or r is not shared yet.
func (r *certReloader) load() error {
	cm, km, err := r.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("receiver: TLS certificate: %w", err)
	}
	r.cert, r.certMod, r.keyMod = &cert, cm, km
	return nil
}

func (r *certReloader) modTimes() (cert, key time.Time, err error) {
	cfi, err := os.Stat(r.certFile)
	if err != nil {
		return cert, key, fmt.Errorf("receiver: TLS certificate: %w", err)
	}
	kfi, err := os.Stat(r.keyFile)
	if err != nil {
		return cert, key, fmt.Errorf("receiver: TLS key: %w", err)
	}
	return cfi.ModTime(), kfi.ModTime(), nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		cm, km, err := r.modTimes()
		if err == nil && (!cm.Equal(r.certMod) || !km.Equal(r.keyMod)) {
			// A renewal may write the two files one after the other: a
			// mismatched pair fails to load and is retried next time.
			if err := r.load(); err != nil {
				r.log.Error("keeping the TLS certificate in force", "error", err)
			} else {
				r.log.Info("TLS certificate reloaded")
			}
		}
	}
	return r.cert, nil
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
