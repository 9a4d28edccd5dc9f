"""HTTP endpoints served beside the web app on its port: webhooks (`/hook/...`); the REST API comes here too."""
