"""Export: selected rows as CSV/Parquet bytes, cluster assignments, an offline HTML map.

The HTML map is one self-contained file: the points are embedded as base64
little-endian arrays (float32 x, y and a uint16 colour index per point), drawn
on a ``<canvas>`` by a few lines of inline JavaScript (pan by dragging, zoom
with the wheel, names at cluster centres thinned as the view zooms out). It
loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = ["table_bytes", "assignments_frame", "offline_map_html", "FORMATS"]

FORMATS = ("csv", "parquet")
_MAX_COLOURS = 65_535


def table_bytes(table: pd.DataFrame, fmt: str = "csv") -> bytes:
    """A table as file bytes (for a download button).

    Parameters
    ----------
    table : DataFrame
    fmt : {"csv", "parquet"}, default="csv"
        CSV is UTF-8 with a header and no index; Parquet keeps the dtypes.

    Returns
    -------
    bytes

    Raises
    ------
    InvalidParameterError
        If ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise InvalidParameterError(f"format must be one of {list(FORMATS)}; got {fmt!r}.")
    if fmt == "csv":
        return table.to_csv(index=False).encode("utf-8")
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def assignments_frame(labels: np.ndarray, names: dict[int, str]) -> pd.DataFrame:
    """Every row's cluster and its name, flat (one row per point).

    Parameters
    ----------
    labels : ndarray of shape (n_samples,), dtype int
        Cluster of each row (-1 = unclustered), in row-id order.
    names : dict of int -> str
        Name of each cluster present.

    Returns
    -------
    DataFrame
        ``_row`` (int64), ``cluster`` (int32), ``cluster_name`` (str).

    Raises
    ------
    InvalidInputError
        If a label has no name.
    """
    labels = np.asarray(labels, dtype=np.int32)
    missing = sorted(set(np.unique(labels).tolist()) - set(names))
    if missing:
        raise InvalidInputError(f"clusters {missing[:10]} have no name; name every cluster.")
    ids = np.array(sorted(names), dtype=np.int64)
    lut = np.array([names[i] for i in ids.tolist()], dtype=object)
    return pd.DataFrame({"_row": np.arange(len(labels), dtype=np.int64), "cluster": labels,
                         "cluster_name": lut[np.searchsorted(ids, labels)]})


def offline_map_html(
    x: np.ndarray,
    y: np.ndarray,
    colour_index: np.ndarray,
    palette: list[str],
    *,
    legend: list[str] | None = None,
    labels: pd.DataFrame | None = None,
    title: str = "Latent Lens map",
) -> str:
    """A self-contained HTML page drawing the map (no network access needed).

    Parameters
    ----------
    x, y : ndarray of shape (n_samples,)
        Map coordinates.
    colour_index : ndarray of shape (n_samples,), dtype int
        Index into ``palette`` for each point.
    palette : list of str
        CSS hex colours ``"#rrggbb"``; at most 65,535.
    legend : list of str, optional
        Legend text per palette entry.
    labels : DataFrame, optional
        Names at cluster centres: columns ``x``, ``y``, ``name``, ``n_rows``; the
        largest clusters keep their name when the view is zoomed out.
    title : str, default="Latent Lens map"

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InvalidInputError
        If lengths disagree, an index is outside the palette, or a colour is not ``#rrggbb``.
    """
    x = np.asarray(x, dtype="<f4")
    y = np.asarray(y, dtype="<f4")
    ci = np.asarray(colour_index)
    if not len(x) == len(y) == len(ci):
        raise InvalidInputError(f"x, y and colours differ in length: {len(x)}, {len(y)}, {len(ci)}.")
    if not 0 < len(palette) <= _MAX_COLOURS:
        raise InvalidInputError(f"the palette must have 1 to {_MAX_COLOURS} colours; got {len(palette)}.")
    if len(ci) and (ci.min() < 0 or ci.max() >= len(palette)):
        raise InvalidInputError(f"colour indices must be in [0, {len(palette) - 1}].")
    bad = [c for c in palette if not (isinstance(c, str) and len(c) == 7 and c[0] == "#"
                                      and all(ch in "0123456789abcdefABCDEF" for ch in c[1:]))]
    if bad:
        raise InvalidInputError(f"palette colours must be '#rrggbb'; got {bad[:3]}.")
    payload = {
        "x": base64.b64encode(x.tobytes()).decode(),
        "y": base64.b64encode(y.tobytes()).decode(),
        "c": base64.b64encode(ci.astype("<u2").tobytes()).decode(),
        "palette": list(palette),
        "legend": list(legend or []),
        "labels": [] if labels is None else [
            {"x": float(r.x), "y": float(r.y), "name": str(r.name), "n": int(r.n_rows)}
            for r in labels.sort_values("n_rows", ascending=False).itertuples(index=False)],
    }
    data = json.dumps(payload).replace("</", "<\\/")
    return _TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data).replace(
        "__N__", f"{len(x):,}")


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{margin:0;font:13px system-ui,sans-serif;background:#fff;color:#222}
#top{padding:6px 10px;border-bottom:1px solid #ddd}
#wrap{position:relative;height:calc(100vh - 34px)}
canvas{position:absolute;left:0;top:0;width:100%;height:100%;cursor:grab}
#legend{position:absolute;right:8px;top:8px;background:rgba(255,255,255,.9);padding:6px;
max-height:80%;overflow:auto;border:1px solid #ddd}
#legend div{white-space:nowrap}#legend span{display:inline-block;width:10px;height:10px;margin-right:4px}
</style></head><body>
<div id="top"><b>__TITLE__</b> &middot; __N__ points &middot; drag to pan, wheel to zoom</div>
<div id="wrap"><canvas id="map"></canvas><div id="legend"></div></div>
<script id="data" type="application/json">__DATA__</script>
<script>
(function(){
const D=JSON.parse(document.getElementById('data').textContent);
function dec(s,T){const b=atob(s),u=new Uint8Array(b.length);for(let i=0;i<b.length;i++)u[i]=b.charCodeAt(i);return new T(u.buffer);}
const X=dec(D.x,Float32Array),Y=dec(D.y,Float32Array),C=dec(D.c,Uint16Array),n=X.length;
const rgb=D.palette.map(h=>[parseInt(h.slice(1,3),16),parseInt(h.slice(3,5),16),parseInt(h.slice(5,7),16)]);
let x0=Infinity,x1=-Infinity,y0=Infinity,y1=-Infinity;
for(let i=0;i<n;i++){if(X[i]<x0)x0=X[i];if(X[i]>x1)x1=X[i];if(Y[i]<y0)y0=Y[i];if(Y[i]>y1)y1=Y[i];}
if(!(x1>x0)){x0-=1;x1+=1;}if(!(y1>y0)){y0-=1;y1+=1;}
const cv=document.getElementById('map'),ctx=cv.getContext('2d');
let k=1,tx=0,ty=0;
function draw(){
 const W=cv.width=cv.clientWidth,H=cv.height=cv.clientHeight,pad=20;
 const s=Math.min((W-2*pad)/(x1-x0),(H-2*pad)/(y1-y0))*k;
 const ox=W/2+tx-s*(x0+x1)/2, oy=H/2+ty+s*(y0+y1)/2;
 const img=ctx.createImageData(W,H),p=img.data;
 for(let i=0;i<n;i++){const px=(ox+s*X[i])|0,py=(oy-s*Y[i])|0;
  if(px<1||py<1||px>=W-1||py>=H-1)continue;const c=rgb[C[i]];
  for(let dy=-1;dy<=1;dy++)for(let dx=-1;dx<=1;dx++){if(dx&&dy)continue;const o=4*((py+dy)*W+px+dx);
   p[o]=c[0];p[o+1]=c[1];p[o+2]=c[2];p[o+3]=255;}}
 ctx.putImageData(img,0,0);
 ctx.font='bold 13px system-ui,sans-serif';ctx.textAlign='center';ctx.lineWidth=3;
 const placed=[];
 for(const l of D.labels){const px=ox+s*l.x,py=oy-s*l.y,w=ctx.measureText(l.name).width/2+4;
  if(px<0||py<0||px>W||py>H)continue;
  if(placed.some(q=>Math.abs(q[0]-px)<q[2]+w&&Math.abs(q[1]-py)<16))continue;
  placed.push([px,py,w]);ctx.strokeStyle='#fff';ctx.strokeText(l.name,px,py);
  ctx.fillStyle='#111';ctx.fillText(l.name,px,py);}
}
let drag=null;
cv.onmousedown=e=>{drag=[e.clientX-tx,e.clientY-ty];};
window.onmouseup=()=>{drag=null;};
window.onmousemove=e=>{if(drag){tx=e.clientX-drag[0];ty=e.clientY-drag[1];draw();}};
cv.onwheel=e=>{e.preventDefault();const f=e.deltaY<0?1.2:1/1.2;const r=cv.getBoundingClientRect();
 const mx=e.clientX-r.left-cv.clientWidth/2,my=e.clientY-r.top-cv.clientHeight/2;
 tx=mx-(mx-tx)*f;ty=my-(my-ty)*f;k*=f;draw();};
window.onresize=draw;
const lg=document.getElementById('legend');
if(!D.legend.length)lg.remove();else D.legend.forEach((t,i)=>{const d=document.createElement('div');
 const sw=document.createElement('span');sw.style.background=D.palette[i];d.appendChild(sw);
 d.appendChild(document.createTextNode(t));lg.appendChild(d);});
draw();
})();
</script></body></html>
"""
