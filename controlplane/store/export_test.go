package store

import "time"

// SetInvolvesEvery sets how often s's group commits index users' audit
// records (0: every commit), for tests that place the mark.
func SetInvolvesEvery(s *SQLite, d time.Duration) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.involvesEvery, s.involvesAt = d, time.Now()
}
