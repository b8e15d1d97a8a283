package core

import "strings"

// MaxChannelLen is the longest channel name.
const MaxChannelLen = 128

// privatePrefix starts channels private to one user: "user:X" belongs to the
// user whose sub is exactly X.
const privatePrefix = "user:"

// ValidChannel reports whether name matches ^[A-Za-z0-9_.:-]{1,128}$.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// channelOwner returns the user a private channel belongs to.
func channelOwner(channel string) (string, bool) {
	if strings.HasPrefix(channel, privatePrefix) {
		return channel[len(privatePrefix):], true
	}
	return "", false
}

// canSubscribe reports whether c may subscribe to channel.
func canSubscribe(c Conn, channel string) bool {
	owner, private := channelOwner(channel)
	return !private || owner == c.User
}

// canPublish reports whether c may publish to channel.
func canPublish(c Conn, channel string) bool {
	owner, private := channelOwner(channel)
	return !private || owner == c.User || c.Admin
}
