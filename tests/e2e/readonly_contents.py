"""A contents manager that serves the notebooks but never writes them (used by the browser suite).

The browser runs every notebook; a save (autosave, a stray Ctrl+S) would write its outputs into
the repository's notebooks. Here such a save fails loudly instead.
"""
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web


class ReadOnlyContentsManager(AsyncLargeFileManager):
    async def save(self, model, path=""):
        raise web.HTTPError(403, f"the browser tests never write files ({path})")

    async def delete_file(self, path):
        raise web.HTTPError(403, f"the browser tests never delete files ({path})")

    async def rename_file(self, old_path, new_path):
        raise web.HTTPError(403, f"the browser tests never rename files ({old_path})")
