package hub

import "encoding/binary"

// The hub frames each message once, for every client: a server's frames
// are unmasked (RFC 6455 §5.1), so the bytes on the wire are the same for
// all of them. A write pump then hands a batch of whole frames to one
// writev instead of one write per message per client, which profiles of
// 1,000 clients showed to be most of the server's time.

// maxTextFrameHeader is the longest header textFrame writes.
const maxTextFrameHeader = 10

// textFrame returns payload as one final, unmasked text frame (RFC 6455
// §5.2): FIN and opcode 1, then the payload length in 7, 7+16 or 7+64 bits.
func textFrame(payload []byte) []byte {
	f := make([]byte, 0, maxTextFrameHeader+len(payload))
	f = append(f, 0x80|0x1)
	switch n := len(payload); {
	case n <= 125:
		f = append(f, byte(n))
	case n <= 0xffff:
		f = append(f, 126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}
