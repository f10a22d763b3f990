package sandbox

import "testing"

func TestListeningPorts(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2382 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65532        0 2 1 0000000000000000 20 4 30 10 -1
   2: 00000000:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 3 1 0000000000000000 100 0 0 10 0
`
	got := listeningPorts(table)
	if len(got) != 2 || got[0] != 8080 || got[1] != 9090 {
		t.Errorf("listening ports %v, want [8080 9090] (the established connection is not listening)", got)
	}
}
