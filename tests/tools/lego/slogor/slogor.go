// Package slogor stands in for gitlab.com/greyxor/slogor (a colour log handler lego's CLI uses), which the Go
// module proxy here does not serve. Only the four names lego v5 calls exist; the handler is slog's text one.
package slogor

import (
	"io"
	"log/slog"
)

type options struct{ level slog.Leveler }

// OptionFn configures the handler.
type OptionFn func(*options)

// SetLevel sets the minimum level.
func SetLevel(level slog.Leveler) OptionFn { return func(o *options) { o.level = level } }

// SetTimeFormat is accepted and ignored (the text handler writes RFC 3339 times).
func SetTimeFormat(string) OptionFn { return func(*options) {} }

// DisableColor is accepted and ignored (the text handler has no colours).
func DisableColor() OptionFn { return func(*options) {} }

// NewHandler returns slog's text handler.
func NewHandler(w io.Writer, opts ...OptionFn) slog.Handler {
	o := &options{}
	for _, fn := range opts {
		fn(o)
	}
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: o.level})
}
