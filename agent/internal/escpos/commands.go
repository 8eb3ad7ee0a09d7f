package escpos

// Command tables. Each table function gets the command bytes collected so far (h[0] is the
// prefix byte) and returns how many header bytes it needs in total; when h is long enough it
// performs the command (emitting events, switching state to skip or collect a payload) and
// returns 0. Lengths follow Epson's ESC/POS and Star's command references.

// escposFixed gives the total length of fixed-length ESC/POS commands by prefix and command byte.
var escposFixed = map[[2]byte]int{
	// ESC
	{0x1B, 0x0C}: 2, {0x1B, 0x20}: 3, {0x1B, 0x21}: 3, {0x1B, 0x24}: 4, {0x1B, 0x25}: 3,
	{0x1B, 0x2D}: 3, {0x1B, 0x32}: 2, {0x1B, 0x33}: 3, {0x1B, 0x3C}: 2, {0x1B, 0x3D}: 3,
	{0x1B, 0x3F}: 3, {0x1B, 0x45}: 3, {0x1B, 0x47}: 3, {0x1B, 0x4C}: 2, {0x1B, 0x4D}: 3,
	{0x1B, 0x52}: 3, {0x1B, 0x53}: 2, {0x1B, 0x54}: 3, {0x1B, 0x55}: 3, {0x1B, 0x56}: 3,
	{0x1B, 0x57}: 10, {0x1B, 0x5C}: 4, {0x1B, 0x61}: 3, {0x1B, 0x63}: 4,
	{0x1B, 0x72}: 3, {0x1B, 0x75}: 3, {0x1B, 0x76}: 2, {0x1B, 0x7B}: 3, {0x1B, 0x0E}: 2,
	{0x1B, 0x14}: 2,
	// GS
	{0x1D, 0x21}: 3, {0x1D, 0x24}: 4, {0x1D, 0x2F}: 3, {0x1D, 0x3A}: 2, {0x1D, 0x42}: 3,
	{0x1D, 0x48}: 3, {0x1D, 0x49}: 3, {0x1D, 0x4C}: 4, {0x1D, 0x50}: 4, {0x1D, 0x54}: 3,
	{0x1D, 0x57}: 4, {0x1D, 0x5C}: 4, {0x1D, 0x5E}: 5, {0x1D, 0x61}: 3, {0x1D, 0x62}: 3,
	{0x1D, 0x66}: 3, {0x1D, 0x67}: 6, {0x1D, 0x68}: 3, {0x1D, 0x72}: 3, {0x1D, 0x77}: 3,
	{0x1D, 0x43}: 5, {0x1D, 0x45}: 3,
	// FS
	{0x1C, 0x21}: 3, {0x1C, 0x26}: 2, {0x1C, 0x2D}: 3, {0x1C, 0x2E}: 2, {0x1C, 0x43}: 3,
	{0x1C, 0x53}: 4, {0x1C, 0x57}: 3, {0x1C, 0x70}: 4, {0x1C, 0x32}: 76,
	// DLE (real-time commands)
	{0x10, 0x04}: 3, {0x10, 0x05}: 3,
}

var barcodeNames = map[byte]string{
	0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
	65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
	72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1-OMNI", 76: "GS1-TRUNC", 77: "GS1-LIMITED",
	78: "GS1-EXPANDED",
}

func (d *Decoder) escpos(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	pre, c := h[0], h[1]
	switch [2]byte{pre, c} {
	case [2]byte{0x1B, 0x40}: // ESC @
		d.initPrinter()
		return d.done()
	case [2]byte{0x1B, 0x74}: // ESC t n
		if len(h) < 3 {
			return 3
		}
		d.setTable(h[2], epsonTables)
		return d.done()
	case [2]byte{0x1B, 0x64}, [2]byte{0x1B, 0x4A}, [2]byte{0x1B, 0x65}: // ESC d n, ESC J n, ESC e n: print and feed
		if len(h) < 3 {
			return 3
		}
		d.endLine(false)
		return d.done()
	case [2]byte{0x1B, 0x69}, [2]byte{0x1B, 0x6D}: // legacy cuts
		d.endLine(false)
		detail := "full"
		if c == 0x6D {
			detail = "partial"
		}
		d.emit(Event{Kind: EventCut, Detail: detail})
		return d.done()
	case [2]byte{0x1B, 0x70}: // ESC p m t1 t2
		if len(h) < 5 {
			return 5
		}
		pin := "2"
		if h[2] == 1 || h[2] == '1' {
			pin = "5"
		}
		d.emit(Event{Kind: EventDrawer, Detail: pin})
		return d.done()
	case [2]byte{0x1D, 0x56}: // GS V m [n]
		if len(h) < 3 {
			return 3
		}
		m := h[2]
		if m >= 65 && len(h) < 4 {
			return 4
		}
		d.endLine(false)
		detail := "full"
		if m == 1 || m == 49 || m == 66 || m == 98 || m == 104 {
			detail = "partial"
		}
		d.emit(Event{Kind: EventCut, Detail: detail})
		return d.done()
	case [2]byte{0x1D, 0x6B}: // GS k m …
		if len(h) < 3 {
			return 3
		}
		m := h[2]
		ev := Event{Kind: EventBarcode, Detail: barcodeNames[m]}
		if m <= 6 {
			d.stats.Commands++
			d.dataEv = ev
			d.data = d.data[:0]
			d.st = stUntilNUL
			return 0
		}
		if len(h) < 4 {
			return 4
		}
		if ev.Detail == "" {
			ev.Detail = "unknown"
		}
		d.stats.Commands++
		d.startData(int(h[3]), ev)
		return 0
	case [2]byte{0x1D, 0x28}, [2]byte{0x1B, 0x28}, [2]byte{0x1C, 0x28}: // x ( fn pL pH …
		if len(h) < 5 {
			return 5
		}
		n := u16(h[3], h[4])
		d.stats.Commands++
		if pre == 0x1D && h[2] == 'k' {
			d.startData(n, Event{Kind: EventCode2D})
			return 0
		}
		d.skip(n)
		return 0
	case [2]byte{0x1D, 0x38}: // GS 8 L|N p1 p2 p3 p4 …
		if len(h) < 7 {
			return 7
		}
		n := int(h[3]) | int(h[4])<<8 | int(h[5])<<16 | int(h[6])<<24
		d.stats.Commands++
		d.skip(n)
		return 0
	case [2]byte{0x1D, 0x76}: // GS v 0 m xL xH yL yH d…
		if len(h) < 8 {
			return 8
		}
		d.stats.Commands++
		d.skip(u16(h[4], h[5]) * u16(h[6], h[7]))
		return 0
	case [2]byte{0x1D, 0x51}: // GS Q 0 m xL xH yL yH c d…  (variable-size bit image)
		if len(h) < 9 {
			return 9
		}
		d.stats.Commands++
		d.skip(u16(h[4], h[5]) * u16(h[6], h[7]))
		return 0
	case [2]byte{0x1D, 0x2A}: // GS * x y d… (x*y*8 bytes)
		if len(h) < 4 {
			return 4
		}
		d.stats.Commands++
		d.skip(int(h[2]) * int(h[3]) * 8)
		return 0
	case [2]byte{0x1B, 0x2A}: // ESC * m nL nH d…
		if len(h) < 5 {
			return 5
		}
		n := u16(h[3], h[4])
		if h[2] == 32 || h[2] == 33 {
			n *= 3
		}
		d.stats.Commands++
		d.skip(n)
		return 0
	case [2]byte{0x1B, 0x26}: // ESC & y c1 c2 [x d1…d(y*x)]…
		if len(h) < 5 {
			return 5
		}
		d.stats.Commands++
		d.ucY = int(h[2])
		d.ucLeft = int(h[4]) - int(h[3]) + 1
		if d.ucLeft <= 0 {
			d.st = stText
		} else {
			d.st = stUserChars
		}
		return 0
	case [2]byte{0x1B, 0x44}: // ESC D n1 … NUL (at most 32 tab positions)
		d.stats.Commands++
		d.data = d.data[:0]
		d.st = stTabs
		return 0
	case [2]byte{0x10, 0x14}: // DLE DC4 fn …
		if len(h) < 3 {
			return 3
		}
		n := 5
		switch h[2] {
		case 7:
			n = 4
		case 8:
			n = 10
		}
		if len(h) < n {
			return n
		}
		return d.done()
	}
	if n, ok := escposFixed[[2]byte{pre, c}]; ok {
		if len(h) < n {
			return n
		}
		d.escposState(h)
		return d.done()
	}
	return d.unknown(h, 3)
}

// escposState applies the fixed-length commands that change how text is laid out or decoded.
func (d *Decoder) escposState(h []byte) {
	l := &d.lay
	switch [2]byte{h[0], h[1]} {
	case [2]byte{0x1B, 0x21}: // ESC ! n: print mode (bit 0 font B, bit 5 double width)
		l.fontB = h[2]&0x01 != 0
		l.mulESC = 1
		if h[2]&0x20 != 0 {
			l.mulESC = 2
		}
		l.lastGS = false
	case [2]byte{0x1B, 0x4D}: // ESC M n: font A (0, 48), B (1, 49), C (2, 50; as narrow as B)
		l.fontB = h[2]%48 != 0
	case [2]byte{0x1D, 0x21}: // GS ! n: width multiplier in bits 4-6
		l.mulGS = int(h[2]>>4&0x07) + 1
		l.lastGS = true
	case [2]byte{0x1B, 0x20}: // ESC SP n: right-side character spacing
		l.spacing = int(h[2])
	case [2]byte{0x1D, 0x50}: // GS P x y: motion units 1/x inch
		l.unit = 1
		if h[2] > 0 {
			l.unit = float64(defaultDPI) / float64(h[2])
		}
	case [2]byte{0x1B, 0x24}: // ESC $ nL nH: absolute print position
		d.moveTo(float64(u16(h[2], h[3])) * l.unit)
	case [2]byte{0x1B, 0x5C}: // ESC \ nL nH: relative print position (signed)
		d.moveTo(l.x + float64(int16(u16(h[2], h[3])))*l.unit)
	case [2]byte{0x1B, 0x52}: // ESC R n: international character set
		d.setCharset(h[2])
	case [2]byte{0x1C, 0x26}: // FS &: Kanji mode on
		d.mbFlush()
		d.kanji = d.mb != nil
	case [2]byte{0x1C, 0x2E}: // FS .: Kanji mode off
		if d.sjisSystem {
			// The Shift JIS code system tells one- from two-byte characters by their lead
			// byte: Kanji mode does not apply (receiptline sends FS . then FS C 1).
			break
		}
		if d.mb != nil {
			d.mbFlush()
		}
		d.kanji = false
	case [2]byte{0x1C, 0x43}: // FS C n: Kanji code system, 0/48 JIS, 1/49 Shift JIS
		sjis := (h[2] == 1 || h[2] == '1') && d.mb != nil && d.mb.name == "shift_jis"
		if sjis != d.sjisSystem {
			d.mbFlush()
		}
		d.sjisSystem = sjis
		if sjis {
			d.kanji = true
		}
	}
}

// starFixed gives the total length of fixed-length Star Line mode ESC commands by command byte.
var starFixed = map[byte]int{
	0x45: 2, 0x46: 2, 0x2D: 3, 0x5F: 3, 0x34: 2, 0x35: 2, 0x57: 3, 0x68: 3, 0x69: 4,
	0x0E: 2, 0x14: 2, 0x6C: 3, 0x51: 3, 0x30: 2, 0x31: 2, 0x7A: 3, 0x33: 3, 0x61: 3, 0x4A: 3,
	0x49: 3, 0x52: 3, 0x36: 2, 0x37: 2, 0x74: 3, 0x78: 3, 0x2F: 3, 0x4D: 2, 0x50: 2, 0x3A: 2,
	0x55: 3, 0x42: 3, 0x43: 3, 0x4E: 3, 0x4F: 2, 0x22: 2, 0x79: 3, 0x6B: 3, 0x06: 3,
	0x20: 3, 0x71: 3, 0x73: 3, 0x2B: 3, 0x16: 4, 0x1E: 4, 0x07: 4,
}

func (d *Decoder) star(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	c := h[1]
	switch c {
	case 0x40: // ESC @
		d.initPrinter()
		return d.done()
	case 0x64: // ESC d n: cut (0 full, 1 partial, 2 full after feed, 3 partial after feed)
		if len(h) < 3 {
			return 3
		}
		d.endLine(false)
		detail := "full"
		if h[2]&1 == 1 {
			detail = "partial"
		}
		d.emit(Event{Kind: EventCut, Detail: detail})
		return d.done()
	case 0x62: // ESC b n1 n2 n3 n4 d… RS
		if len(h) < 6 {
			return 6
		}
		d.stats.Commands++
		d.dataEv = Event{Kind: EventBarcode, Detail: starBarcode(h[2])}
		d.data = d.data[:0]
		d.st = stUntilRS
		return 0
	case 0x4B: // ESC K n1 n2 d… (bit image, n1+256 n2 bytes)
		if len(h) < 4 {
			return 4
		}
		d.stats.Commands++
		d.skip(u16(h[2], h[3]))
		return 0
	case 0x4C: // ESC L n1 n2 d… (double density, 2 bytes per column)
		if len(h) < 4 {
			return 4
		}
		d.stats.Commands++
		d.skip(2 * u16(h[2], h[3]))
		return 0
	case 0x1D: // ESC GS …
		if len(h) < 3 {
			return 3
		}
		switch h[2] {
		case 0x74: // ESC GS t n: code page
			if len(h) < 4 {
				return 4
			}
			d.setTable(h[3], starTables)
			return d.done()
		case 0x79: // ESC GS y …: QR
			if len(h) < 4 {
				return 4
			}
			if h[3] == 'D' { // ESC GS y D 1 m nL nH d…
				if len(h) < 8 {
					return 8
				}
				d.stats.Commands++
				d.startData(u16(h[6], h[7]), Event{Kind: EventCode2D, Detail: "qr"})
				return 0
			}
			if h[3] == 'P' {
				return d.done()
			}
			if len(h) < 6 {
				return 6
			}
			return d.done()
		case 0x07: // ESC GS BEL m t1 t2: external device
			if len(h) < 6 {
				return 6
			}
			d.emit(Event{Kind: EventDrawer, Detail: "1"})
			return d.done()
		case 0x61: // ESC GS a n: alignment
			if len(h) < 4 {
				return 4
			}
			return d.done()
		case 0x41, 0x52: // ESC GS A n1 n2: absolute position; ESC GS R n1 n2: relative (dots)
			if len(h) < 5 {
				return 5
			}
			n := float64(u16(h[3], h[4]))
			if h[2] == 0x52 {
				n = d.lay.x + float64(int16(u16(h[3], h[4])))
			}
			d.moveTo(n)
			return d.done()
		case 0x53: // ESC GS S m xL xH yL yH n d…: raster graphic, (xL+256 xH)(yL+256 yH) bytes
			if len(h) < 9 {
				return 9
			}
			d.stats.Commands++
			d.skip(u16(h[4], h[5]) * u16(h[6], h[7]))
			return 0
		}
		return d.unknown(h, 4)
	case 0x1C: // ESC FS p n m: print NV logo (no payload)
		if len(h) < 3 {
			return 3
		}
		if h[2] == 'p' {
			if len(h) < 5 {
				return 5
			}
			return d.done()
		}
		return d.unknown(h, 3)
	case 0x44: // ESC D n1 … NUL: tab stops
		d.stats.Commands++
		d.data = d.data[:0]
		d.st = stTabs
		return 0
	case 0x0C: // ESC FF NUL / ESC FF EOT: raster-mode form feed / end of transmission
		if len(h) < 3 {
			return 3
		}
		return d.done()
	case 0x2A: // ESC * r x …: raster mode (A enter, B quit, C clear, R initialise; others end in NUL)
		if len(h) < 4 {
			return 4
		}
		if h[2] != 'r' {
			return d.unknown(h, 4)
		}
		d.stats.Commands++
		switch h[3] {
		case 'A':
			d.endLine(false)
			d.raster = true
		case 'B':
			d.raster = false
		case 'C', 'R':
		default:
			d.remain = 16
			d.st = stSkipNUL
			return 0
		}
		d.st = stText
		return 0
	}
	if n, ok := starFixed[c]; ok {
		if len(h) < n {
			return n
		}
		d.starState(h)
		return d.done()
	}
	return d.unknown(h, 3)
}

// starState applies the Star Line commands that change the character width.
func (d *Decoder) starState(h []byte) {
	l := &d.lay
	l.lastGS = false
	switch h[1] {
	case 0x57: // ESC W n: expanded width, n = 0..5 (or '0'..'5')
		l.mulESC = int(h[2]%48)%6 + 1
	case 0x69: // ESC i n1 n2: height n1, width n2 (0..5)
		l.mulESC = int(h[3]%48)%6 + 1
	case 0x0E: // ESC SO: double width on
		l.mulESC = 2
	case 0x14: // ESC DC4: double width off
		l.mulESC = 1
	case 0x4D: // ESC M: 12-dot pitch (font A)
		l.fontB = false
	case 0x50, 0x3A: // ESC P (15 cpi), ESC : (16 cpi): narrower cells, modelled as font B
		l.fontB = true
	}
}

func starBarcode(n byte) string {
	switch n {
	case '0':
		return "UPC-E"
	case '1':
		return "UPC-A"
	case '2':
		return "EAN8"
	case '3':
		return "EAN13"
	case '4':
		return "CODE39"
	case '5':
		return "ITF"
	case '6':
		return "CODE128"
	case '7':
		return "CODE93"
	case '8':
		return "NW7"
	}
	return "unknown"
}
