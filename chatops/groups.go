package chatops

import (
	"context"
	"errors"
	"sync"
	"time"
)

// groupCache keeps user groups' members for a short while, so that a burst of
// presses reads each group once.
type groupCache struct {
	api SlackAPI
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	groups map[string]groupMembers
}

type groupMembers struct {
	users map[string]bool
	at    time.Time
}

func newGroupCache(api SlackAPI, ttl time.Duration, now func() time.Time) *groupCache {
	return &groupCache{api: api, ttl: ttl, now: now, groups: map[string]groupMembers{}}
}

// member reports whether the user is in the group. An error (the API cannot be
// reached, the token lacks usergroups:read) is no membership: the caller
// refuses.
func (c *groupCache) member(ctx context.Context, group, user string) (bool, error) {
	c.mu.Lock()
	g, ok := c.groups[group]
	c.mu.Unlock()
	if ok && c.now().Sub(g.at) < c.ttl {
		return g.users[user], nil
	}
	if c.api == nil {
		return false, errors.New("no bot token")
	}
	ids, err := c.api.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return false, err
	}
	g = groupMembers{users: make(map[string]bool, len(ids)), at: c.now()}
	for _, id := range ids {
		g.users[id] = true
	}
	c.mu.Lock()
	c.groups[group] = g
	c.mu.Unlock()
	return g.users[user], nil
}
