// Package dedup turns signals into counted occurrences on RemediationRequests
// without ever letting one fingerprint have two active RemediationRequests.
//
// The mechanics, in one place (docs/dedup.md has the argument):
//
//   - Names. Every RemediationRequest of a fingerprint fp in a namespace is
//     opened at one name, rr-<fp[:60]>, with the API server's atomic create,
//     so concurrent creators, in this process or any other replica, collide
//     on it and all but one get AlreadyExists. A finished one there is
//     deleted first, by UID; one being deleted takes no counts.
//   - Counting. Every increment is a status update carrying the
//     resourceVersion it was computed from, so no write is lost and no
//     increment lands on an object that changed phase in between. A signal
//     is acknowledged only after the write that carries it succeeded.
//   - Batching. Concurrent signals for one RemediationRequest in one process
//     share a write (group commit): one write in flight per object, the next
//     one carries everything that arrived meanwhile.
//   - Reads. Lookups come from an informer cache and from the objects this
//     process wrote last. A stale cache costs a failed create or a conflict,
//     never correctness.
package dedup
