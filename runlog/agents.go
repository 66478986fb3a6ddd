package runlog

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// agentTTL is how long an agent's heartbeat counts: agents beat every
// agentBeat, and one silent for agentTTL leaves the list.
const (
	agentTTL  = 15 * time.Second
	agentBeat = 5 * time.Second
)

// AgentInfo is what an agent says of itself in its heartbeat.
type AgentInfo struct {
	Name        string    `json:"name"`
	Incarnation string    `json:"incarnation"`
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	Classes     []string  `json:"classes"` // the device classes it takes
	Lanes       []Slots   `json:"lanes"`
	Beat        time.Time `json:"beat"`
}

// Slots is an agent's capacity in one lane.
type Slots struct {
	Lane  string `json:"lane"`
	Slots int    `json:"slots"`
	Busy  int    `json:"busy"`
}

// Beat records info as alive now.
func (l *Log) Beat(ctx context.Context, info AgentInfo) error {
	info.Beat = time.Now().UTC()
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := l.agents.Put(ctx, info.Name, b); err != nil {
		return fmt.Errorf("runlog: agent heartbeat: %w", err)
	}
	return nil
}

// Leave removes agent name from the list at once (a graceful stop).
func (l *Log) Leave(ctx context.Context, name string) {
	l.agents.Purge(ctx, name)
}

// Agents lists the agents whose heartbeat is fresh, by name.
func (l *Log) Agents(ctx context.Context) ([]AgentInfo, error) {
	lister, err := l.agents.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("runlog: listing agents: %w", err)
	}
	var out []AgentInfo
	for key := range lister.Keys() {
		e, err := l.agents.Get(ctx, key)
		if err != nil {
			continue // gone since the listing
		}
		var a AgentInfo
		if json.Unmarshal(e.Value(), &a) == nil && time.Since(a.Beat) < agentTTL {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b AgentInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// Serves reports whether some agent takes jobs of lane and class.
func Serves(agents []AgentInfo, lane, class string) bool {
	for _, a := range agents {
		if !slices.Contains(a.Classes, class) {
			continue
		}
		for _, s := range a.Lanes {
			if s.Lane == lane && s.Slots > 0 {
				return true
			}
		}
	}
	return false
}
