"""The messages' edge: how each delivery channel travels (`channels`), e-mail over SMTP (`smtp`, its
resource `mail`, the message `mail_message` and `mail_types`), SMS and WhatsApp (`text_messages`,
its resource `text_message_provider`), and the letter writer's plain types and resource
(`letter_types`, `letters`)."""
