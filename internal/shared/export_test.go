package shared

// TallyCount is how many tallies l keeps.
func TallyCount(l *Local) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tallies.len()
}
