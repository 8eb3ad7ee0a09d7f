// Command exits is a broken "release" for rollback tests: it exits at once, never healthy.
package main

import "os"

func main() { os.Exit(3) }
