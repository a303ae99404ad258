package crossroads

// The browser console (package console). Its acts on the registers, the
// certificates and the trail are recorded as their API twins (same kind and
// action); its sessions are recorded as RecordConsole events with these
// actions.
const (
	ConsoleLogin  = "login"  // a console session opened (OpenID Connect or client certificate)
	ConsoleLogout = "logout" // a console session closed by its holder
)

// Refusals of the console (pages answer with these in the problem's reason
// and in the HTML page).
const (
	// ReasonConsoleCSRF: a state-changing console form came without the
	// session's anti-forgery token, with another one, or from another
	// origin.
	ReasonConsoleCSRF Reason = "console-csrf"
	// ReasonConsoleSession: no console session, an expired one, or one
	// whose client certificate is no longer the connection's.
	ReasonConsoleSession Reason = "console-session"
	// ReasonConsoleLogin: the OpenID Connect login failed (state, nonce,
	// PKCE, token or claims).
	ReasonConsoleLogin Reason = "console-login"
	// ReasonConsoleRole: the session's role may not see the page.
	ReasonConsoleRole Reason = "console-role"
)
