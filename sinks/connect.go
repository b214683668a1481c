package sinks

import (
	"net"

	"github.com/segmentio/kafka-go"
)

// Connection returns what reaches the brokers as c's TLS, SASL, ClientID
// and DialTimeout say: a Transport for kafka-go Clients and a Dialer for
// Readers. The sink's own writer connects the same way; the commands that
// read the gateway's topics (tail) use these.
func (c Config) Connection() (*kafka.Transport, *kafka.Dialer, error) {
	tlsCfg, err := c.TLS.config()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, nil, err
	}
	t := &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: c.DialTimeout}).DialContext,
		ClientID:    c.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
		MetadataTTL: c.MetadataTTL,
	}
	d := &kafka.Dialer{ClientID: c.ClientID, Timeout: c.DialTimeout, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
	return t, d, nil
}
