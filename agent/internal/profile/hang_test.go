package profile_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHangHunt(t *testing.T) {
	names, ps := shippedSorted(t)
	rng := rand.New(rand.NewSource(1))
	var seeds [][]byte
	var which []int
	for i, n := range names {
		inputs, _ := filepath.Glob(filepath.Join("testdata", n, "*", "input.*"))
		for _, in := range inputs {
			b, _ := os.ReadFile(in)
			seeds = append(seeds, b)
			which = append(which, i)
		}
	}
	for iter := 0; iter < 3000; iter++ {
		k := rng.Intn(len(seeds))
		d := append([]byte(nil), seeds[k]...)
		for m := rng.Intn(8); m >= 0; m-- {
			if len(d) == 0 {
				break
			}
			switch rng.Intn(3) {
			case 0:
				d[rng.Intn(len(d))] = byte(rng.Intn(256))
			case 1:
				i := rng.Intn(len(d))
				d = append(d[:i], append([]byte{byte(rng.Intn(256))}, d[i:]...)...)
			case 2:
				i := rng.Intn(len(d))
				d = d[:i]
			}
		}
		w := uint8(which[k] + rng.Intn(2))
		sp := uint16(rng.Intn(65536))
		done := make(chan bool)
		go func() {
			defer close(done)
			checkParse(t, names, ps, d, w, sp)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			os.WriteFile("/tmp/hang.bin", d, 0o644)
			panic("hang")
		}
	}
}
