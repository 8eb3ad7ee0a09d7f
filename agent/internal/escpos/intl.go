package escpos

// International character sets (ESC R n) replace twelve ASCII positions. The replaced positions
// and per-set characters follow Epson's ESC/POS command reference (sets 0–16; 17 Arabia and the
// India sets 66–82 are not modelled and leave ASCII unchanged, counted in Stats.BadCharsets).

// intlPositions are the ASCII bytes an international character set can replace, in table order.
var intlPositions = [12]byte{0x23, 0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x60, 0x7B, 0x7C, 0x7D, 0x7E}

// intlSets maps n to the twelve characters at intlPositions (a string of 12 runes).
var intlSets = map[byte]string{
	0:  "#$@[\\]^`{|}~", // USA
	1:  "#$à°ç§^`éùè¨",  // France
	2:  "#$§ÄÖÜ^`äöüß",  // Germany
	3:  "£$@[\\]^`{|}~", // UK
	4:  "#$@ÆØÅ^`æøå~",  // Denmark I
	5:  "#¤ÉÄÖÅÜéäöåü",  // Sweden
	6:  "#$@°\\é^ùàòèì", // Italy
	7:  "₧$@¡Ñ¿^`¨ñ}~",  // Spain I
	8:  "#$@[¥]^`{|}~",  // Japan
	9:  "#¤ÉÆØÅÜéæøåü",  // Norway
	10: "#$ÉÆØÅÜéæøåü",  // Denmark II
	11: "#$á¡Ñ¿é`íñóú",  // Spain II
	12: "#$á¡Ñ¿éüíñóú",  // Latin America
	13: "#$@[₩]^`{|}~",  // Korea
	14: "#$ŽŠĐĆČžšđćč",  // Slovenia / Croatia
	15: "#¥@[\\]^`{|}~", // China
	16: "#₫@[\\]^`{|}~", // Vietnam
}

// intlTable returns the 128-entry replacement table for set n, or nil for USA / unknown.
func intlTable(n byte) (*[128]rune, bool) {
	s, ok := intlSets[n]
	if !ok {
		return nil, false
	}
	if n == 0 {
		return nil, true
	}
	var t [128]rune
	for i := range t {
		t[i] = rune(i)
	}
	i := 0
	for _, r := range s {
		t[intlPositions[i]] = r
		i++
	}
	return &t, true
}
