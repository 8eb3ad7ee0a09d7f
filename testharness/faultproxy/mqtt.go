package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxPacket bounds one MQTT packet (the protocol's own limit is 256 MiB).
const maxPacket = 256 << 20

// ErrBadPacket is returned for a fixed header that is not valid MQTT.
var ErrBadPacket = errors.New("faultproxy: malformed MQTT fixed header")

// mqttReader splits a byte stream into whole MQTT control packets.
type mqttReader struct {
	r  io.Reader
	br *bufio.Reader
}

// next returns the next whole packet, fixed header included. The slice is freshly allocated.
func (m *mqttReader) next() ([]byte, error) {
	if m.br == nil {
		m.br = bufio.NewReaderSize(m.r, 64<<10)
	}
	hdr := make([]byte, 1, 5)
	b, err := m.br.ReadByte()
	if err != nil {
		return nil, err
	}
	hdr[0] = b
	var rem, mul int
	mul = 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, ErrBadPacket
		}
		b, err := m.br.ReadByte()
		if err != nil {
			return nil, unexpected(err)
		}
		hdr = append(hdr, b)
		rem += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		mul *= 128
	}
	if rem > maxPacket {
		return nil, fmt.Errorf("%w: remaining length %d", ErrBadPacket, rem)
	}
	pk := make([]byte, len(hdr)+rem)
	copy(pk, hdr)
	if _, err := io.ReadFull(m.br, pk[len(hdr):]); err != nil {
		return nil, unexpected(err)
	}
	return pk, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
