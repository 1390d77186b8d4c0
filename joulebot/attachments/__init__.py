"""What a user attaches to a question: images (validated and normalised with Pillow) and text files.

`parts` holds the plain data a Request carries and imports nothing heavy; `images` and
`text_files` do the reading, so only the front ends that receive attachments load Pillow.
"""
