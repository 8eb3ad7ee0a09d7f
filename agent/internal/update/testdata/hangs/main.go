// Command hangs is a broken "release" for rollback tests: it runs but never reports healthy.
package main

import "time"

func main() {
	for {
		time.Sleep(time.Hour)
	}
}
