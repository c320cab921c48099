package targets

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// suggest returns the apiVersion and Kind a sender probably meant by kind
// in gv's group: the same name in another group, or a kind, resource or
// short name a typo or two away. It reads the memory-cached discovery only.
func (r *Resolver) suggest(gv schema.GroupVersion, kind string) string {
	_, lists, _ := r.cached.ServerGroupsAndResources() // partial lists are fine for a hint
	sent := strings.ToLower(kind)
	limit := maxSuggestionDistance(sent)
	var best schema.GroupKind
	bestScore := -1
	for _, list := range lists {
		listGV, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			if strings.Contains(res.Name, "/") {
				continue // a subresource
			}
			for _, name := range append([]string{strings.ToLower(res.Kind), res.Name, res.SingularName}, res.ShortNames...) {
				d := distance(sent, name)
				if d > limit || (d == 0 && listGV.Group == gv.Group) {
					continue
				}
				// Fewer edits first; at equal edits, the sender's group.
				score := 2 * d
				if listGV.Group != gv.Group {
					score++
				}
				gk := schema.GroupKind{Group: listGV.Group, Kind: res.Kind}
				if bestScore < 0 || score < bestScore || (score == bestScore && gk.String() < best.String()) {
					best, bestScore = gk, score
				}
			}
		}
	}
	if bestScore < 0 {
		return ""
	}
	m, err := r.mapper.RESTMapping(best)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("apiVersion %q, kind %q", m.GroupVersionKind.GroupVersion().String(), m.GroupVersionKind.Kind)
}

// maxSuggestionDistance is how many edits away a name may be to be
// suggested: two (one transposition) for names long enough that two edits
// leave most of them, fewer for short ones.
func maxSuggestionDistance(s string) int {
	return min(2, len(s)/4)
}

// distance is the Levenshtein distance of a and b, byte-wise (kinds and
// resource names are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
