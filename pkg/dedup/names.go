package dedup

import (
	"strconv"
	"strings"
)

// namePrefixLength is how many hex digits of the fingerprint go into a
// name: 64 bits keep names short, and a collision of two fingerprints on
// one name is detected (ErrNameCollision), never merged.
const namePrefixLength = 16

// SlotName returns the name of the RemediationRequest in slot slot of
// fingerprint fp.
func SlotName(fp string, slot int) string {
	return "rr-" + fp[:namePrefixLength] + "-" + strconv.Itoa(slot)
}

// slotOf returns the slot of name if name is a slot name of fp.
func slotOf(fp, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "rr-"+fp[:namePrefixLength]+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	slot, err := strconv.Atoi(rest)
	if err != nil || slot < 0 {
		return 0, false
	}
	return slot, true
}
