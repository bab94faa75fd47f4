"""The two faces: what each shows (view, state), how it is drawn (fonts, layout, render), and the panels (devices)."""
