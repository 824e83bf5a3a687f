"""The dashboard at /ui: what operators look at all day.

    dashboard.py   the parts composed: pages, login, the live overview
    login.py       /ui/login and /ui/logout: the session cookie (warden.access.session)
    pages.py       the pages (HTML shells) and /ui/static
    html.py        the layout and the templates (templates/*.html)
    overview.py    the overview's numbers for one range, from the store
    live.py        /api/live (server-sent events) and /api/overview, and the hub that shares
                   one computation per tick among every client
    static/        css/, js/ (one ES module per page, and api.js, format.js, chart.js, live.js,
                   dom.js), vendor/ (uPlot, MIT), favicon.svg

The pages read the same /api endpoints as any client (with the session cookie instead of a
bearer key): /api/requests, /api/stats, /api/summary, /api/findings, /api/budgets, /api/keys,
/api/deployments, /api/config. See docs/dashboard.md.
"""
