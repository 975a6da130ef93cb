"""Administration of the shop's side: agencies and their recipients."""
