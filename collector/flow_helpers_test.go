package collector

import (
	"strconv"
	"time"
)

var t0 = time.Now() // flows must be fresh for PublishSnapshot (wall clock)

func itoa(i int) string { return strconv.Itoa(i) }
