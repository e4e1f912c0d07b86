// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2 is the Argon2id of golang.org/x/crypto/argon2 (v0.59.0,
// BSD-3-Clause, see LICENSE) with one change: the working memory of a hash
// is kept in a Pool and reused by the next hash instead of being allocated
// afresh. The upstream API cannot do that (golang/go#36634, open since
// 2020); MinIO carries the same change for the same reason.
//
// Why it matters for a password server: every upstream IDKey call makes
// (and zeroes) memory-cost KiB of new heap — 19 MiB at the OWASP
// parameters — and drops it. Under a stream of logins that is a steady
// stream of page faults, zeroing and garbage collection on top of the hash
// itself, a tenth or more of the CPU on a small machine. With a Pool the
// buffers of the previous hashes are used again as they are.
//
// Reused memory is not zeroed: the first pass writes every block before
// anything reads it (upstream XORs into zeroed memory on the first pass,
// which gives the same result; this copy overwrites instead), so stale
// contents never reach the output. Only Argon2id is kept; the algorithm
// code is upstream's, unchanged.
package argon2

import (
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Version is the Argon2 version implemented (0x13).
const Version = 0x13

const argon2id = 2

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

// Pool keeps the working memory of finished hashes for later ones. At most
// maxIdle buffers are kept between hashes; when more are handed back the
// least recently returned one goes to the garbage collector, so a Pool holds
// at most maxIdle × the largest memory cost in use. A Pool is safe for
// concurrent use; its zero value keeps nothing (every hash allocates, like
// upstream).
type Pool struct {
	mu      sync.Mutex
	idle    [][]block // least recently returned first
	maxIdle int
}

// NewPool returns a Pool that keeps up to maxIdle buffers: the number of
// hashes that run at once (a hashing limiter's concurrency) is the right
// value, since that many buffers are in use at the busiest moment anyway.
func NewPool(maxIdle int) *Pool {
	return &Pool{maxIdle: max(maxIdle, 0)}
}

// get returns a buffer of exactly n blocks, reused when one is idle.
func (p *Pool) get(n uint32) []block {
	p.mu.Lock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if b := p.idle[i]; uint32(len(b)) == n {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.mu.Unlock()
			return b
		}
	}
	p.mu.Unlock()
	return make([]block, n)
}

// put hands a buffer back for reuse.
func (p *Pool) put(b []block) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxIdle == 0 {
		return
	}
	if len(p.idle) == p.maxIdle {
		p.idle[0] = nil
		p.idle = append(p.idle[:0], p.idle[1:]...)
	}
	p.idle = append(p.idle, b)
}

// Idle reports how many buffers the Pool holds and their total size in
// bytes.
func (p *Pool) Idle() (buffers int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.idle {
		bytes += int64(len(b)) * blockLength * 8
	}
	return len(p.idle), bytes
}

// IDKey is upstream's argon2.IDKey computed in memory from p: the Argon2id
// key of password and salt with time passes over memory KiB in threads
// lanes, keyLen bytes long. time and threads must be at least 1.
func (p *Pool) IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return p.deriveKey(password, salt, nil, nil, time, memory, threads, keyLen)
}

func (p *Pool) deriveKey(password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, argon2id)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	B := p.get(memory)
	defer p.put(B)
	initBlocks(&h0, B, uint32(threads))
	processBlocks(B, time, memory, uint32(threads))
	return extractKey(B, memory, uint32(threads), keyLen)
}

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

// initBlocks writes the first two blocks of every lane of B (upstream
// allocates B here).
func initBlocks(h0 *[blake2b.Size + 8]byte, B []block, threads uint32) {
	var block0 [1024]byte
	memory := uint32(len(B))
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
}

func processBlocks(B []block, time, memory, threads uint32) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32, wg *sync.WaitGroup) {
		var addresses, in, zero block
		if n == 0 && slice < syncPoints/2 {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(argon2id)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			in[6]++
			processBlock(&addresses, &in, &zero)
			processBlock(&addresses, &addresses, &zero)
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if n == 0 && slice < syncPoints/2 {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			if n == 0 {
				// The one change from upstream: the first pass overwrites
				// the block (reused memory is not zeroed); later passes XOR
				// into it as Argon2 v1.3 says.
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
		wg.Done()
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			var wg sync.WaitGroup
			for lane := uint32(0); lane < threads; lane++ {
				wg.Add(1)
				go processSegment(n, slice, lane, &wg)
			}
			wg.Wait()
		}
	}
}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
