"""Channel connectors: base template, breaker, WhatsApp, Instagram and native."""
