// Package bufpool recycles the byte buffers answers are rendered into.
//
// Every answer is a few kilobytes, rendered into a buffer and then copied
// into the connection's own buffer; allocating a fresh one per request was
// most of what a request allocated. A buffer that grew beyond Max (a large
// error document, an unusual configuration) is left to the garbage
// collector instead of being kept.
package bufpool

import "sync"

// Sizes of pooled buffers.
const (
	Initial = 4 << 10
	Max     = 64 << 10
)

// Pool is a pool of buffers. The zero value is ready to use.
type Pool struct{ p sync.Pool }

// Get returns an empty buffer.
func (b *Pool) Get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, 0, Initial)
	return &buf
}

// Put returns a buffer for reuse; its contents must no longer be used.
func (b *Pool) Put(buf *[]byte) {
	if cap(*buf) <= Max {
		*buf = (*buf)[:0]
		b.p.Put(buf)
	}
}
