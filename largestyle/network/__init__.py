"""The VGG-19 network: its module, weight flavours and file formats, finding, fetching and loading weights."""
