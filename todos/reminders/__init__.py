"""Reminders: the rules of when one fires, the ledger of each reminder's
state, the Dapr job calls, the SMTP mailer and the job callback's delivery."""
