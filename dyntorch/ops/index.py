"""(filled by its issue)"""
PUBLIC: dict = {}
