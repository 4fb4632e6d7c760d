"""The X-ray machine's watched folder (field-formats 2e).

``core.XrayCore`` is sans-IO (file names, bytes and times in, ``XrayImage`` or
counted ``Malformed`` out); ``watcher.FolderWatcher`` lists the folder and decides
when a file is complete; ``watcher.XrayFolderSource`` runs both live.
"""
