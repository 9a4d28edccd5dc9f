"""The communication router: webhook URLs that start flows (`/hook/{token}`), durable before it answers.

Where a webhook enters: app.py (the ASGI application); how its route is found: routes.py; how it becomes a
durable run: ingress.py; how a synchronous caller gets the flow's reply: replies.py.
"""
